"""The recommender: datasets, storage, models, training, serving. Never imports discord."""
