"""Readers and writers of annotation file formats (EDF+ TAL, NSRR XML, CSV).

Import from :mod:`sleeplm_core.io.annotations`; these modules are its implementation.
"""
