"""Live media: audio in from provider streams, VAD, the ASR worker pool, redaction, sentiment.

`MediaEngine` (engine.py) is what a node holds; `StreamSession` (stream.py) is one call's
stream. Audio helpers (`codec`, `reorder`), the VAD segmenter and the ASR packing are pure and
tested with tables; models run only on the speech worker pool, never on the event loop.
"""
