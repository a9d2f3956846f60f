LM_SCORE = config["lm_score"]
LM_CORPORA = scored_corpora(LM_SCORE)
# "stored" is not a text: it is read from the features models' stores
TEXT_CORPORA = text_corpora(LM_SCORE)


rule lm_corpus:
    """The text corpus language models are scored on."""
    input:
        preflight=PREFLIGHT,
        fetched=fetched("lm_score/corpus_hub"),
        code=library_of("lm_score/corpus.py"),
    output:
        "data/corpora/{corpus}.txt",
    log:
        "logs/lm_score/corpus_{corpus}.log",
    benchmark:
        "logs/benchmarks/lm_corpus/corpus_{corpus}.tsv"
    conda:
        "../envs/prh.yaml"
    params:
        **settings_of("prh/data/corpora.py:load_corpus", LM_SCORE),
    script:
        "../scripts/lm_score/corpus.py"


rule lm_score:
    """Bits-per-byte of one language model on the corpus (not applicable for encoders)."""
    input:
        unpack(
            lambda wildcards: {
                f"corpus_{name}": f"data/corpora/{name}.txt" for name in TEXT_CORPORA
            }
        ),
        unpack(stored_scores),
        preflight=PREFLIGHT,
        fetched=fetched("models", "model"),
        checkpoint=checkpoint_of,
        code=library_of("lm_score/score.py"),
    output:
        "results/lm_scores/{model}.parquet",
    log:
        "logs/lm_score/{model}.log",
    benchmark:
        "logs/benchmarks/lm_score/{model}.tsv"
    conda:
        "../envs/prh.yaml"
    threads: config["embedding"]["threads"]
    resources:
        **model_resources("lm_score"),
    params:
        spec=lambda wildcards: MODELS[wildcards.model],
        corpora=sorted(LM_CORPORA),  # which one Fig. 3 reads is not a scoring parameter
        context=LM_SCORE["context"],
        batch_size=LM_SCORE["batch_size"],
        device=config["embedding"]["device"],
    script:
        "../scripts/lm_score/score.py"


rule aggregate_lm_scores:
    input:
        scores=[f"results/lm_scores/{m}.parquet" for m in LANGUAGE_MODELS],
        code=library_of("lm_score/aggregate.py"),
    output:
        "results/lm_scores.parquet",
    log:
        "logs/lm_score/aggregate.log",
    benchmark:
        "logs/benchmarks/aggregate_lm_scores.tsv"
    conda:
        "../envs/prh.yaml"
    script:
        "../scripts/lm_score/aggregate.py"
