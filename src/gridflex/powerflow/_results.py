"""Outcomes of a power-flow solve."""

import optimistix as optx


class RESULTS(optx.RESULTS):  # pyright: ignore[reportGeneralTypeIssues]
    """Power-flow outcomes; extends `optimistix.RESULTS` with messages that say what
    to try next. Read one with `gridflex.powerflow.RESULTS[sol.result]`."""

    power_flow_max_steps = (
        "The power flow did not converge within `max_steps` iterations. The load may "
        "be close to or beyond the feeder's maximum loadability (voltage collapse), "
        "where the Z-Bus fixed point slows down sharply. Try "
        "`solver=gridflex.powerflow.Newton()`, a larger `max_steps`, or less load."
    )
    power_flow_diverged = (
        "The power flow diverged (non-finite voltages): the load is most likely beyond "
        "the feeder's maximum loadability, so no operating point exists. Reduce the "
        "load or check the injections' signs (positive = consumption) and units (kW)."
    )
    non_finite_input = (
        "An input to the power flow is not finite (NaN or infinite `p_kw`, `q_kvar` or "
        "`load_scale`), so no voltages were computed. Check the injections and the "
        "load multipliers that produced it."
    )
