"""aioir.viz"""
