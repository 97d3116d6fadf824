"""Embeddings from a model folder: batched embedder, fast path, long recordings.

Works with any SpeechBrain embedding lobe; the fast path applies to ERes2Net.
"""
