/* q7 public API (grows as the engine lands). */
#ifndef Q7_H
#define Q7_H
#include "graph/base.h"
#endif
