
BmaskJn@
¿Q6“Bo¬™¹N»µ/M7