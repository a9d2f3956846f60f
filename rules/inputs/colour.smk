# Fig. 8's models and final outputs (rules in rules/colour.smk).
COLOUR_LANGUAGE = config["colour"]["language"] or RUNNABLE_LANGUAGE


EXPERIMENT_OUTPUTS.extend(
    f"results/figures/colours_{name}.png" for name in config["colour"]["sets"]
)


COLOUR = config["colour"]
