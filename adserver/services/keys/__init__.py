"""Keys and secrets an operator rotates: API keys (issued, listed, revoked), schools' ``whsec_``
signing secrets, and the encryption key of personal data at rest (every sealed value sealed again
under the new key)."""
