#ifndef POOLER_CLIBPQ_SHIM_H
#define POOLER_CLIBPQ_SHIM_H
#include <postgresql/libpq-fe.h>
#endif
