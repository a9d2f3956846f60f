"""The idealised world of Section 4 and App. F: contrastive learners approaching the PMI kernel of Z."""
