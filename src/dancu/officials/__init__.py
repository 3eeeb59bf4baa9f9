"""Back-office officials: accounts, passwords, TOTP second factor, sessions and authorisation.

Officials are the commune and province police who keep the register, the ministry's auditors
and the system's administrators (docs/backoffice.md). Each is scoped to an administrative
unit; ``policy`` says which role may do what, ``dancu.registry.scope`` says where.
"""
