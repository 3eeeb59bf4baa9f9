"""Pure, framework-free Vietnamese data primitives: names, dates, sex and personal ID numbers."""
