from pathlib import Path

from prh.data.corpora import load_corpus, text_fingerprint
from prh.io.workflow import logged

with logged(snakemake.log[0]) as log:
    text = load_corpus(snakemake.wildcards.corpus, **dict(snakemake.params.items()))
    Path(snakemake.output[0]).parent.mkdir(parents=True, exist_ok=True)
    Path(snakemake.output[0]).write_text(text, encoding="utf-8")
    log.info("%d bytes, %s", len(text.encode("utf-8")), text_fingerprint(text))
