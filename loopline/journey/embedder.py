"""The sentence embedder now lives in `loopline.text.embedder` (media's sentiment shares it);
these names stay importable from here."""

from loopline.text.embedder import MAX_TOKENS as MAX_TOKENS
from loopline.text.embedder import PACKAGE as PACKAGE
from loopline.text.embedder import EmbedderMissing as EmbedderMissing
from loopline.text.embedder import MiniLmEmbedder as MiniLmEmbedder
from loopline.text.embedder import model_dir as model_dir
