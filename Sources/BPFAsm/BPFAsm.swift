// Placeholder: the instruction set lands here.
