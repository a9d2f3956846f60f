# The input functions of models read from a file (rules in rules/precomputed.smk and rules/lm_score.smk).


def precomputed_file(wildcards):
    """A features file read from a local path is an input: replacing it imports it again."""
    spec = MODELS[wildcards.model]
    return [spec["path"]] if spec.get("path") else []


def export_inputs(wildcards):
    """Every model's features store of the dataset and, for the causal LMs' bits-per-byte, their scores."""
    stores = [
        f"results/features/{wildcards.dataset}/{m}.zarr"
        for m in DATASET_MODELS[wildcards.dataset]
        if m != WORLD
    ]
    scores = ["results/lm_scores.parquet"] if LANGUAGE_MODELS else []
    return {"stores": stores, "scores": scores}


def stored_scores(wildcards):
    """A features model's stored bits-per-byte lives in its features store."""
    spec = MODELS[wildcards.model]
    if spec["source"] != "features" or STORED not in scored_corpora(config["lm_score"]):
        return {}
    return {"features": f"results/features/{spec['dataset']}/{wildcards.model}.zarr"}
