"""Just enough of the yolov7 repository's module classes (models.common, models.yolo) for
torch.load to unpickle a yolov7 checkpoint and run it: the forward passes of the yolov7 code,
written for q7's reference checks (tools/refstack)."""
