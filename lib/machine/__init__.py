"""What a run asks of the machine: the CUDA checks (gpu), micro-batches that fit the card (memory) and the
TensorBoard board (watch), and the test-only fault hook the loop calls (faults). The loop calls them, so they
sit below train.py, above the model."""
