/* ONNX export when q7 is built without protobuf-c. */
#include "models/onnx_export.h"

enum q7_status q7_onnx_export(struct q7_graph * g, int64_t h, int64_t w,
                              const struct q7_onnx_quant * quant, const char * path)
{
    (void)g;
    (void)h;
    (void)w;
    (void)quant;
    return q7_error_set(Q7_ERR_UNSUPPORTED,
                        "%s: q7 was built without protobuf-c; install libprotobuf-c-dev and "
                        "protobuf-c-compiler and rebuild for ONNX export", path);
}
