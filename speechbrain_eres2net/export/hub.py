"""Uploading a model folder to the Hugging Face Hub.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..paths import PathLike


def push_to_hub(
    folder: PathLike,
    repo_id: str,
    token: Optional[str] = None,
    private: bool = False,
    commit_message: str = "Upload ERes2Net model folder",
):
    """Uploads a model folder to the Hugging Face Hub (creating the repo).

    After this, ``from_hparams(source=repo_id)`` loads it.
    """
    from huggingface_hub import HfApi

    folder = Path(folder)
    if not (folder / "hyperparams.yaml").is_file():
        raise FileNotFoundError(f"{folder} is not a model folder (no hyperparams.yaml)")
    api = HfApi(token=token)
    api.create_repo(repo_id=repo_id, repo_type="model", private=private, exist_ok=True)
    return api.upload_folder(
        folder_path=str(folder),
        repo_id=repo_id,
        repo_type="model",
        commit_message=commit_message,
    )
