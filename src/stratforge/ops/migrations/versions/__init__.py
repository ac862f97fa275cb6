"""One module per schema revision, additive only after the first release."""
