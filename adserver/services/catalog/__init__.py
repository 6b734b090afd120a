"""The catalog: schools with their campuses, programs and delivery settings, campaigns with their
ads, and publishers; every change is announced so each web process's campaign index follows."""
