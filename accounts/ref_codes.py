"""Referral code generation: accounts.User's ref_code default, and the shape referrals.services checks."""

import secrets

# Lower-case letters and digits without the look-alikes i, l, o, 0, 1.
REF_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
REF_CODE_LENGTH = 6


def ref_code_generate() -> str:
    return "".join(secrets.choice(REF_CODE_ALPHABET) for _ in range(REF_CODE_LENGTH))
