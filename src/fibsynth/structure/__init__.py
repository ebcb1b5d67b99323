"""Ground-truth structures."""
