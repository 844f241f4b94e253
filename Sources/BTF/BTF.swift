// Placeholder: the BTF model lands here.
