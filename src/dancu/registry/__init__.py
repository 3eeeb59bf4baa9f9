"""The national population register (Cơ sở dữ liệu quốc gia về dân cư)."""
