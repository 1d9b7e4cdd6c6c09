"""The format readers: each turns one kind of export into a `crackseg.data.types.DatasetIndex`.

yolo (Ultralytics / Roboflow YOLO, with yolo_labels for the label lines), coco (Roboflow COCO,
polygons and RLE), maskdir (image + mask folders). `crackseg.data.index` picks one.
"""
