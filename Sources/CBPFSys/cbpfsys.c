#include "cbpfsys.h"
