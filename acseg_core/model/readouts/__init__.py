"""Read-outs fitted after training and stored in the model file beside the weights."""
