package main

// benchFloor is filled in with the util-linux boot floor.
func benchFloor(b *berthd, r *report) error { return nil }
