from pathlib import Path

from prh.lm_score import corpus_pydoc, text_fingerprint
from prh.workflow import logged

with logged(snakemake.log[0]) as log:
    text = corpus_pydoc(snakemake.params.max_bytes)
    Path(snakemake.output[0]).parent.mkdir(parents=True, exist_ok=True)
    Path(snakemake.output[0]).write_text(text, encoding="utf-8")
    log.info("%d bytes, %s", len(text.encode("utf-8")), text_fingerprint(text))
