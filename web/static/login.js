// Clicking a demo account fills in its username and moves to the password field.
document.querySelectorAll(".demo-user").forEach(function (button) {
  button.addEventListener("click", function () {
    var field = document.getElementById("username");
    field.value = button.dataset.username;
    document.getElementById("password").focus();
  });
});
