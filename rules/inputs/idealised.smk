# The idealised world's final outputs (rules in rules/idealised.smk).
if config["idealised"]["enabled"]:
    EXPERIMENT_OUTPUTS.append("results/figures/idealised_world.png")


IDEALISED = config["idealised"]
