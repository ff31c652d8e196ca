#ifndef BERTH_USERNS_HOLDER_H
#define BERTH_USERNS_HOLDER_H

// The holder's stack: it makes two system calls and never returns.
#define BERTH_USERNS_HOLDER_STACK (16 * 1024)

int berth_userns_holder(void **stack);

#endif
