"""Administrative units: 2025 (34 provinces, 3,321 communes) and legacy (63 provinces, 696
districts, 10,035 communes), with the conversion from old to new."""
