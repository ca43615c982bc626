"""Analysis of depth profiles, pure numpy: profile metrics (plateau, front, width), the
electroneutral Buckley-Leverett reference, measured ToF-SIMS profiles (and raw ToF-SIMS
counts against sputter time), SIMS depth resolution, and transport analysis (paper eq. 3,
Onsager coefficients, PSED).
"""
