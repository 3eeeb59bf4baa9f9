"""The access log: who read which person's data, when and why; append-only, hash-chained."""
