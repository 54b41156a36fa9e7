"""Who a member of staff is: roles, password hashes, sign-in tokens (docs/staff.md)."""
