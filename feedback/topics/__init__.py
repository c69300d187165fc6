"""Topics: discovered with BERTopic over the shared encoder's embeddings, stable across refits.

- `clustering`: how documents are grouped (UMAP + HDBSCAN on a sample finds the topics, every
  document then goes to its nearest topic centroid; a refit is seeded with the last version's
  centroids so topics do not reshuffle).
- `model`: the BERTopic model built on those groups (c-TF-IDF keywords, labels, topic
  embeddings), saved as safetensors with a pointer to the embedding model, never pickled.
- `alignment`: matching a refit's topics to the previous version's (Hungarian).
- `taxonomy`: stable topic ids, versions and user edits (rename, merge, pin).
- `over_time`: counts and sentiment per period, emerging topics.
- `service`: refit, assign (transform) and read, as the API, CLI and jobs call them.

Importing this package is cheap: BERTopic, UMAP and HDBSCAN load only when a model is fitted
or loaded. docs/topics.md explains the choices; model_cards/topics.md has the measured numbers.
"""
