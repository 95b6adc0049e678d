"""What training and serving both compute from the data: dense ids, the fit/validation split, content
features.
"""
