"""Fidelity and realism metrics used by `zrealism_core.evaluate` (zrealism_core/evaluation/) (plain numpy in, floats out).

silhouette.py  mask IoU + boundary F-measure (DAVIS J&F)
edges.py       Pearson correlation of smoothed |LoG| maps (+ gradient-magnitude correlation)
colour_fidelity.py  low-passed CIEDE2000, k-means/Hungarian palette, LAB colour moments
texture.py     no-reference NSS realism (BRISQUE features, NIQE-style model) + blur guard
temporal.py    flow-warping error (DIS flow, occlusion mask) + luminance flicker
calibration.py every anchor that maps a distance to 0..1, with its reason and data
"""
