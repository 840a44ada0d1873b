"""Finding and correcting members: filtered keyset listings and edits of a member's details."""
