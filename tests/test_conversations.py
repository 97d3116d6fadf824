"""benchmarks.conversations: simulated realspk conversations and their reference.

The diarization benchmark scores against these references, so the checks are
on what would make a DER dishonest: files that change from run to run, speech
the reference misses or silence it calls speech, overlap shares outside what
is announced, and RTTM files that do not say what the reference says.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from benchmarks.conversations import (
    KINDS,
    build_conversations,
    build_meeting,
    reference_annotation,
    write_reference_rttm,
)
from benchmarks.measure import REALSPK

pytestmark = pytest.mark.skipif(
    not (REALSPK / "dev_list.txt").exists(),
    reason=f"realspk not found at {REALSPK} (set ERES2NET_REALSPK)",
)

MINUTES = (1.0, 1.2)
# One turn of slack: three of realspk's longest utterances (7.6 s) with their
# gaps, the longest pause, and the last file's trailing silence plus the tail.
TURN = 3 * 7.6 + 2 * 0.4 + 2.5 + 2.0


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """Two builds with the same seed (kinds cycle over 3, speakers over 4)."""
    return [
        build_conversations(
            tmp_path_factory.mktemp(f"build{i}"), count=4, seed=0, minutes=MINUTES
        )
        for i in range(2)
    ]


@pytest.fixture(scope="module")
def conversations(builds):
    return builds[0]


def speech_gaps(conversation):
    """(start, end) of the stretches no reference speaker speaks."""
    gaps, cursor = [], 0.0
    for start, end, _ in conversation.reference:
        if start > cursor:
            gaps.append((cursor, start))
        cursor = max(cursor, end)
    return gaps + [(cursor, conversation.duration)]


def overlap_share(reference):
    """Overlapped speech / speech from an event sweep, independent of the
    module's millisecond grid."""
    events = sorted(
        [(s, 1) for s, _, _ in reference] + [(e, -1) for _, e, _ in reference]
    )
    speech = overlap = last = active = 0
    for time, step in events:
        speech += (time - last) * (active >= 1)
        overlap += (time - last) * (active >= 2)
        active, last = active + step, time
    return overlap / speech


def test_same_seed_gives_the_same_files_and_references(builds, tmp_path):
    first, again = builds
    assert [c.name for c in first] == [c.name for c in again]
    for a, b in zip(first, again):
        assert a.path != b.path and a.path.read_bytes() == b.path.read_bytes()
        assert (a.reference, a.speakers, a.duration, a.kind, a.overlap_share) == (
            b.reference,
            b.speakers,
            b.duration,
            b.kind,
            b.overlap_share,
        )
    other = build_conversations(tmp_path, count=1, seed=1, minutes=MINUTES)[0]
    assert other.reference != first[0].reference
    assert other.path.read_bytes() != first[0].path.read_bytes()


def test_every_kind_and_speaker_count_appears(conversations):
    assert {c.kind for c in conversations} == set(KINDS)
    assert sorted(len(c.speakers) for c in conversations) == [2, 3, 4, 5]
    for c in conversations:
        assert c.name.endswith(f"_{len(c.speakers)}spk_{c.kind}")
        assert len(set(c.speakers)) == len(c.speakers)


def test_overlap_share_is_as_announced(conversations):
    for c in conversations:
        assert c.overlap_share == pytest.approx(overlap_share(c.reference), abs=1e-3)
        if c.kind == "overlap":
            assert 0.05 <= c.overlap_share <= 0.10, c.name
        else:
            assert c.overlap_share == 0.0, c.name


def test_noisy_gaps_hold_noise_and_no_reference_speech(conversations):
    for c in conversations:
        audio, rate = soundfile.read(c.path, dtype="float32")
        long = [(s, e) for s, e in speech_gaps(c) if e - s >= 8.0]
        if c.kind != "noisy":
            assert long == [], c.name  # pauses and file silences stay short
            continue
        assert 2 <= len(long) <= 4, c.name
        for start, end in long:
            stretch = audio[int(start * rate) : int(end * rate)]
            assert np.sqrt(np.mean(stretch**2)) > 1e-3  # -60 dBFS: not silent


def test_reference_is_where_the_speech_is(conversations):
    for c in conversations:
        if c.kind != "clean":
            continue
        audio, rate = soundfile.read(c.path, dtype="float32")
        inside = np.zeros(len(audio), bool)
        for start, end, _ in c.reference:
            inside[int(start * rate) : int(end * rate)] = True
        energy = audio**2
        assert energy[inside].sum() / energy.sum() > 0.99, c.name


def test_files_durations_and_segments(conversations):
    for c in conversations:
        info = soundfile.info(c.path)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert info.frames / 16000 == pytest.approx(c.duration)
        assert 60 * MINUTES[0] <= c.duration <= 60 * MINUTES[1] + TURN, c.name
        starts = [s for s, _, _ in c.reference]
        assert starts == sorted(starts)
        assert all(0 <= s < e <= c.duration for s, e, _ in c.reference)
        assert {w for _, _, w in c.reference} == set(c.speakers)
        for speaker in c.speakers:  # a speaker's segments closer than 0.3 s merge
            own = [(s, e) for s, e, w in c.reference if w == speaker]
            assert all(b[0] - a[1] >= 0.3 - 1e-9 for a, b in zip(own, own[1:]))


def test_rttm_and_annotation_say_what_the_reference_says(conversations, tmp_path):
    from pyannote.database.util import load_rttm

    for c in conversations:
        write_reference_rttm(c, tmp_path / f"{c.name}.rttm")
        loaded = load_rttm(tmp_path / f"{c.name}.rttm")
        assert list(loaded) == [c.name]
        annotation = reference_annotation(c)
        assert annotation.uri == c.name
        for speaker in c.speakers:
            total = sum(e - s for s, e, w in c.reference if w == speaker)
            assert loaded[c.name].label_duration(speaker) == pytest.approx(
                total, abs=1e-3
            )
            assert annotation.label_duration(speaker) == pytest.approx(total, abs=1e-3)


def test_meeting_has_the_expected_length(tmp_path):
    meeting = build_meeting(tmp_path, 1.5)
    assert meeting.name == "meeting_1.5min_4spk" and len(meeting.speakers) == 4
    # a noise gap (<= 12 s) may come before the turn that passes the target
    assert 90 <= meeting.duration <= 90 + TURN + 12
    assert soundfile.info(meeting.path).frames / 16000 == pytest.approx(
        meeting.duration
    )
    assert {w for _, _, w in meeting.reference} == set(meeting.speakers)
