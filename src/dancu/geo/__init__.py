"""Administrative units: the 2025 units (34 provinces, 3,321 communes) and the legacy 63/696/10,040."""
