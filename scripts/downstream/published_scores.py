from prh.experiments.downstream.tasks import published_scores, read_published
from prh.io.features import store_attrs
from prh.io.provenance import script_provenance
from prh.io.workflow import logged, write_table

with logged(snakemake.log[0]) as log:
    task, i = snakemake.wildcards.mc_task, snakemake.input
    table, sha256 = read_published(i.table, f"downstream.tasks.{task}")
    models = snakemake.params.models
    parameters = {m["name"]: int(store_attrs(path)["model_parameters"]) for m, path in zip(models, i.features)}
    scores = published_scores(table, sha256, models, parameters, task)
    write_table(scores, snakemake.output[0], script_provenance(snakemake) | {"table": i.table, "sha256": sha256})
    log.info("%d of %d language models have a published score (table sha256 %s)",
             scores["applicable"].sum(), len(models), sha256[:12])  # fmt: skip
