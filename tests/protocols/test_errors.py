from protocols import InputError, PolicyRefusal


def test_input_error_names_file_row_column():
    err = InputError("undecodable bytes", file="crm.csv", row=12, column="email")
    assert str(err) == "crm.csv, row 12, column 'email': undecodable bytes"


def test_policy_refusal_names_rule_and_exits_3():
    err = PolicyRefusal("threshold", "fewer than 50 people")
    assert "threshold" in str(err) and err.exit_code == 3
