#ifndef CBPFSYS_H
#define CBPFSYS_H
/* Syscall wrappers only; no logic lives here. */
#endif
