/* Empty: SwiftPM needs a source file in a C target; the header re-exports zlib. */
#include "cplumbzlib.h"
