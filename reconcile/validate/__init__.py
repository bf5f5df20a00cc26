"""Validation: pandera for single records, Great Expectations for the data set, nights."""
