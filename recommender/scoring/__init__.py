"""The exported model in numpy (score, top-k, fold-in, content map) and the math it shares. No
TensorFlow.
"""
