from prh.alignment.states import compute_state, write_state
from prh.io.provenance import script_provenance
from prh.io.workflow import logged

with logged(snakemake.log[0]) as log:
    state, info = compute_state(snakemake.input.features, **dict(snakemake.params.items()))
    write_state(state, snakemake.output[0], script_provenance(snakemake))
    log.info("%s\n%s", state, info)
