"""Clinical PSG reports (PDF and HTML) and annotation export.

=============  ===============================================================================
``model``      :class:`ReportData` from a Recording and the model's results (Qt-free)
``content``    the rows and sentences both formats show (Qt-free)
``figures``    hypnogram, spectrogram, events/SpO2 and segment thumbnails (QPainter -> QImage)
``pdf``        A4 PDF with Qt's QPdfWriter
``html``       self-contained HTML (base64 PNG figures, semantic tables)
``export``     ``export_report`` (.pdf/.html), ``export_annotations`` (.csv/.edf/.xml), atomic
``cli``        ``build_report_headless`` for ``sleepviewer FILE --report OUT``
=============  ===============================================================================

Nothing is imported here, so that ``import sleepviewer.report.export`` stays light.
"""
