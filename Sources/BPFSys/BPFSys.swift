// Placeholder so the module exists; the syscall layer lands here.
